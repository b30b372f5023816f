"""The party roster: branches, members, the CSV import and eligibility."""
