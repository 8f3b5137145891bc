"""No-LLM analyzers: deterministic rules that turn toolset data into findings and an RCA."""

from incidentfox.agents.analyzers.findings import Finding, rank_findings
from incidentfox.agents.analyzers.kubernetes import analyze_kubernetes
from incidentfox.agents.analyzers.rca_builder import build_rca

__all__ = ["Finding", "analyze_kubernetes", "build_rca", "rank_findings"]
