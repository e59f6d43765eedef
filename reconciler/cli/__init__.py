"""The command line: thin commands over the manifest, api, engine and render packages."""
