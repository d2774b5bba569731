from refactorbot.cli import main

main()
