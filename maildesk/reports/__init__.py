"""Reports for people: the SLA page (`maildesk report sla --html FILE`) and the lead's digest figures."""
