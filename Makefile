# Shortcuts for ./labkit (which needs nothing installed; `make` may not be, on a fresh machine).
.PHONY: lab test setup doctor bench
lab:
	./labkit lab
test:
	./labkit test
setup:
	./labkit setup
doctor:
	.venv/bin/python -m lablib doctor
bench:
	.venv/bin/python benchmarks/bench_lab.py
