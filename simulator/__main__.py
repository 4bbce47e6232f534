from simulator.cli import main

# Guarded: worker processes (`--workers`) import this module again and must not start another run.
if __name__ == "__main__":
    raise SystemExit(main())
