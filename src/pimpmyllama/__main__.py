from pimpmyllama.cli.main import main

main()
