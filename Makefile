# Induction Heads -- build, test and run the book.
#
#   make book    build the site into _build/html (open _build/html/index.html)
#   make test    every test: unit tests, book build (executes every notebook once), browser
#   make test-notebooks  run the chapters with nbval (quicker to iterate on one chapter)
#   make lab     open the chapters live in JupyterLab
#   make bench   time the library (benchmarks/*.py print tables)
#   make student write the student versions of the chapters to student/
#   make models  retrain every named recipe and rewrite the shipped checkpoints (induction_lib/models/)
#   make clean   remove build outputs (keeps .venv and the trained-model cache)
#
# Every target installs what it needs on first use: the virtual environment
# .venv is (re)built from requirements.txt whenever that or pyproject.toml
# changes (stamp file .venv/.installed).

SHELL   := /bin/bash
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
STAMP   := $(VENV)/.installed
BIN     := $(CURDIR)/$(VENV)/bin

# Tools from the virtual environment come first.
export PATH := $(BIN):$(PATH)

.PHONY: venv book test test-unit test-notebooks test-book lab bench student models clean distclean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -r requirements.txt -r requirements-test.txt
	touch $@

book: $(STAMP)
	tools/build_book.sh
	@echo "Book built: open $(CURDIR)/_build/html/index.html"

# Order: unit tests, book build, real browser. The book build executes every notebook (hidden asserts
# included; a failing cell fails it), so the notebooks are not run a second time with nbval. Every test starts from an empty model cache
# (a fresh temporary directory), so a model cached by hand can never hide a failure.
test: $(STAMP)
	cache=$$(mktemp -d -t induction-cache.XXXXXX) && \
	INDUCTION_LIB_CACHE=$$cache $(MAKE) --no-print-directory test-unit test-book; \
	status=$$?; rm -rf $$cache; exit $$status

# Unit tests draw figures off-screen (not the notebooks: the book needs inline figures).
test-unit: $(STAMP)
	MPLBACKEND=Agg python -m pytest tests --ignore=tests/test_book.py --ignore=tests/test_browser.py

test-notebooks: $(STAMP)
	python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider \
	    --ignore-glob='**/.ipynb_checkpoints/*' --ignore-glob='**/_build/*' book/

# tests/conftest.py builds the book once (tools/build_book.sh, like `make book`);
# test_book.py checks the build, test_browser.py opens every page in Chromium.
test-book: $(STAMP)
	python -m pytest tests/test_book.py tests/test_browser.py

lab: $(STAMP)
	python -c "import jupyterlab" 2>/dev/null || python -m pip install jupyterlab
	jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) book/

bench: $(STAMP)
	python benchmarks/train_speed.py
	python benchmarks/widget_updates.py

# Train every named recipe (one thread each, a few minutes) and rewrite induction_lib/models/ and its manifest.
models: $(STAMP)
	python tools/make_models.py

student: $(STAMP)
	python -m induction_lib.exercises.student --out student book

clean:
	rm -rf _build build-assets .pytest_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)
