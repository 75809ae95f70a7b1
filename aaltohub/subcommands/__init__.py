"""CLI commands: ``arguments`` declares what each accepts; each other module implements a command
group and is imported only when one of its commands runs."""
