"""Elections, stations, ballots, the tally and publication (built up by the coming issues)."""
