from pimpmyllama.cli.launch import main

main()
