"""The ticket domain every cause of change writes through: the rows
(`writes`), the outbox, and the pure rules of status (`lifecycle`), who is
notified (`notices`), satisfaction scores (`csat`) and signed links (`links`)."""
