"""Command-line interface. Commands parse arguments, call one library function, print."""
