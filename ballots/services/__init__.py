"""Every write of the election, one module per stage of the day: setup, then the station."""
