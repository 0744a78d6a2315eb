from memgate.entry import main

raise SystemExit(main())
