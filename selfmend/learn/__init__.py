"""Learning from outcomes: pattern confidence, the weekly optimizer and rule mining."""
