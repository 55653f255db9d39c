"""kube-scheduler: an API client that binds pending pods to nodes through filter and score plugins.

`Scheduler(client).run(stop)` (or `run_scheduler(client, stop)`) watches nodes, pods, volumes and
storage classes, and schedules the pods whose spec.schedulerName is its name.
"""

from .framework import Code, CycleState, FitError, Framework, NodeInfo, Plugin, Status
from .plugins import DEFAULT_PLUGINS, REGISTRY
from .queue import SchedulingQueue
from .scheduler import Scheduler, run_scheduler

__all__ = ["Scheduler", "run_scheduler", "Framework", "Plugin", "Status", "Code", "CycleState", "NodeInfo",
           "FitError", "SchedulingQueue", "REGISTRY", "DEFAULT_PLUGINS"]
