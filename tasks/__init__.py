"""One module per stage. A task validates its arguments, calls the core and returns JSON."""
