from consulta.cli import main

main()
