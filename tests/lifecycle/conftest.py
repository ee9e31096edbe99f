"""The lifecycle engine against the real sandbox: the engine tests' fixtures (`sbx`,
`make_world`), reused."""

from tests.engine.conftest import make_world, sbx  # noqa: F401
