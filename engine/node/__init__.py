"""`ivuscal dicom-node`: a DICOM storage node that analyses received IVUS pullbacks (docs/dicom.md)."""

from engine.node.node import DicomNode, NodeConfig

__all__ = ["DicomNode", "NodeConfig"]
