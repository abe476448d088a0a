from pyzk.cli import main

raise SystemExit(main())
