"""What IncidentFox tells its operators about itself: the process-wide Prometheus collectors."""
