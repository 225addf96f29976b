"""FactoryOps: factory-isolated, firmware-adaptive industrial energy intelligence."""

__version__ = "0.1.0"
