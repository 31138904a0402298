# Sphinx configuration of the fastloss documentation site.
#
# Why Sphinx (with MyST and furo) rather than MkDocs: the public functions are
# generated from the loss registry at import time (fastloss._api.define), and
# Sphinx's autodoc documents the imported objects (signatures, docstrings),
# where mkdocstrings reads source files statically and would not see them.
# MyST keeps every page in Markdown (the same files read well on a code host),
# and furo is a maintained, readable theme. Build: python -m sphinx -W -b html docs docs/_build/html
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

import fastloss  # noqa: E402  (the installed package: autodoc documents what users import)

project = "fastloss"
author = "the fastloss developers"
copyright = "2026, the fastloss developers"
release = version = fastloss.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "fastloss_pages",
]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "_generated/performance-*.md", "Thumbs.db", ".DS_Store"]
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "furo"
html_title = f"fastloss {release}"
# Links from api.md to files outside the site (the benchmark's README) are
# rewritten by fastloss_pages; nothing else is left unresolved.
nitpicky = False
