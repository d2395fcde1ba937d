from opstui.cli import main

main()
