"""CLI subcommands; each module has main(argv) -> int and no logic beyond parsing."""
