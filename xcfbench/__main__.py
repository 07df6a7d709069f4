from xcfbench.cli import main

main()
