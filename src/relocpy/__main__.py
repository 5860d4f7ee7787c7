from relocpy.cli import main

raise SystemExit(main())
