"""Use cases over storage and the domain: enrolment, invites, the journal, submit."""
