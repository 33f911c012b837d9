from mamba_build.cli import main

raise SystemExit(main())
