.PHONY: demo test lint bench messages

demo:  ## set up and start the demo clinic on http://127.0.0.1:8000
	scripts/demo.sh

test:  ## set up and run the whole test suite
	scripts/test.sh

lint:
	scripts/setup.sh
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:  ## needs PostgreSQL and Redis on 127.0.0.1
	scripts/setup.sh
	.venv/bin/python bench/call_setup.py

messages:  ## refresh the .po catalogues after changing strings, then compile them
	scripts/setup.sh
	cd consulta && CONSULTA_ENV=test ../.venv/bin/consulta makemessages -l it -l fr -l nb --no-obsolete
	CONSULTA_ENV=test .venv/bin/python scripts/compile_messages.py
