from django.db import migrations


def reinstall_and_recount(apps, schema_editor):
    # The board's statistics count copied orders (action = place rows), no longer every row:
    # replace the triggers and recount every board (see trading.board).
    from trading import board

    board.install_triggers(schema_editor.connection)
    board.rebuild_boards(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0007_readiness_request"),
    ]

    operations = [
        # Backwards: nothing to undo (the triggers' SQL lives in trading.board, not here).
        migrations.RunPython(reinstall_and_recount, migrations.RunPython.noop),
    ]
