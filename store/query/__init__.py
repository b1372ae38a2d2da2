"""From segments to answers: the compiler, SQL building, counts, member sets, browsing,
and the reference evaluator."""
