from aria.cli.main import run

run()
