from immute.cli import main

main()
