"""What the clock does: the time rules (`rules`, pure), business-day
arithmetic (`calendar`), SLA lights (`sla`) and the sweep that applies them."""
