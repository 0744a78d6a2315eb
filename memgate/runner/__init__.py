"""Running the suites: ``suites`` runs the chosen ones into a report, ``suite`` runs one under its tool
(and combines its repeats), ``schedule`` decides which run at once."""
