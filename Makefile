# The two commands of the README. Everything they need is installed by hacking/setup.sh.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test demo sanity units lint integration molecule clean

help:
	@echo "make test    set up, then run every test stage (sanity units lint integration molecule)"
	@echo "make demo    set up, then run the 4.2 -> 4.3 upgrade against the local lab"
	@echo "make <stage> run one test stage (after setup)"

setup:
	@hacking/setup.sh

test: setup
	@hacking/test.sh

demo: setup
	@hacking/demo.sh

sanity units lint integration molecule: setup
	@hacking/test.sh $@

clean:
	rm -rf .venv .cache tests/output
