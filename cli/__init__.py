"""The `blueprints` command line: the top layer, which nothing else in the project imports."""
