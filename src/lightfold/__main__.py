from lightfold.cli import main

main()
