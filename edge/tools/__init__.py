"""Developer tooling: builds what the package ships (the daemon never imports this)."""
