"""Small helpers shared by the command-line tools (``tools/``), which may not import each other."""
