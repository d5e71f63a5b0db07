-- A class is retired (撤销) rather than deleted: registers, leave and former pupils still
-- point at it. A retired class keeps its grade and number but takes no new assignments.

alter table classes add column retired_at timestamptz;
