"""This folder is also the package xcfbench.corpora (pyproject.toml maps it), so that the
corpus ships in the wheel and is found with importlib.resources."""
