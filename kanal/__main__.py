from kanal.app.cli import main

main()
