"""``python -m flare_uda ...``: the ``flare-uda`` command without its console script."""

from flare_uda.cli import main

if __name__ == "__main__":
    main()
