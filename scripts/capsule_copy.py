"""A copy of a published MJCF arm with its meshes replaced by capsules: held-out inputs for
the benchmarks (docs/benchmarks.md, "Arms not in the repository"), from a model file alone,
without its mesh files.

Visual-only mesh geoms (contype = conaffinity = 0, directly or through their class) are
dropped; each collision mesh becomes one capsule along its link, from 15 % to 85 % of the way
from its body's origin to its first child body at least 1 cm away (or to a site; else a
sphere). Contacts at the zero pose and at every keyframe between a body and its parent or
grandparent (joints whose axes meet, where the capsules overlap by construction) get an
<exclude>; any other contact there shrinks every radius by 15 %. Everything else (kinematic
tree, joints, inertials, actuators, options, keyframes) is kept as published: an
approximation of the collision geometry, not of the dynamics.

    python scripts/capsule_copy.py IN.xml OUT.xml [--radius 0.04]
"""
import argparse
import xml.etree.ElementTree as ET

import mujoco
import numpy as np


def class_attrs(root):
    table = {}

    def walk(node, parent, name):
        own = {}
        for child in node:
            if child.tag == "geom":
                own.update(child.attrib)
        merged = dict(table.get(parent, {}))
        merged.update(own)
        table[name] = merged
        for child in node:
            if child.tag == "default":
                walk(child, name, child.get("class", name))

    for top in root.findall("default"):
        walk(top, None, top.get("class", "main"))
    return table


def convert(text, radius):
    root = ET.fromstring(text)
    for compiler in root.findall("compiler"):
        compiler.attrib.pop("meshdir", None)
    for asset in root.findall("asset"):
        for mesh in asset.findall("mesh"):
            asset.remove(mesh)
    classes = class_attrs(root)
    capsules = []

    def walk(body, childclass):
        childclass = body.get("childclass", childclass)
        kids = body.findall("body")
        for geom in list(body.findall("geom")):
            attrs = dict(classes.get(geom.get("class", childclass), {}))
            attrs.update(geom.attrib)
            if attrs.get("type", "sphere") != "mesh" and "mesh" not in geom.attrib:
                continue
            if attrs.get("contype", "1") == "0" and attrs.get("conaffinity", "1") == "0":
                body.remove(geom)
                continue
            geom.attrib.pop("mesh", None)
            end = None
            for kid in kids:
                p = np.array([float(v) for v in kid.get("pos", "0 0 0").split()])
                if np.linalg.norm(p) > 0.01:
                    end = p
                    break
            if end is None:
                for site in body.findall("site"):
                    p = np.array([float(v) for v in site.get("pos", "0 0 0").split()])
                    if np.linalg.norm(p) > 0.01:
                        end = p
            if end is None:
                geom.set("type", "sphere")
                geom.attrib.pop("fromto", None)
            else:
                geom.set("type", "capsule")
                geom.set("fromto", " ".join(f"{v:.5g}" for v in (*(0.15 * end), *(0.85 * end))))
            for k in ("pos", "quat", "euler", "axisangle"):
                geom.attrib.pop(k, None)
            capsules.append(geom)
        for kid in kids:
            walk(kid, childclass)

    for world in root.findall("worldbody"):
        for body in world.findall("body"):
            walk(body, "main")
    r = radius
    excluded = set()
    for _ in range(30):
        for geom in capsules:
            geom.set("size", f"{r:.4g}")
        out = ET.tostring(root, encoding="unicode")
        model = mujoco.MjModel.from_xml_string(out)
        data = mujoco.MjData(model)
        poses = [np.zeros(model.nq)] + [model.key_qpos[k] for k in range(model.nkey)]
        clash = False
        for q in poses:
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            for c in data.contact[:data.ncon]:
                b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
                p1, p2 = model.body_parentid[b1], model.body_parentid[b2]
                near = b2 in (p1, model.body_parentid[p1]) or b1 in (p2, model.body_parentid[p2])
                pair = tuple(sorted((model.body(b1).name, model.body(b2).name)))
                if near and pair not in excluded:
                    excluded.add(pair)
                    contact = root.find("contact")
                    if contact is None:
                        contact = ET.SubElement(root, "contact")
                    ET.SubElement(contact, "exclude", body1=pair[0], body2=pair[1])
                clash = clash or not near
        if not clash and out == ET.tostring(root, encoding="unicode"):
            return out, r
        if clash:
            r *= 0.85
    raise SystemExit("error: could not make the zero pose and keyframes free of contact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--radius", type=float, default=0.04, help="the capsules' first radius (m)")
    args = parser.parse_args()
    with open(args.source) as f:
        out, r = convert(f.read(), args.radius)
    with open(args.out, "w") as f:
        f.write(out)
    print(f"{args.out}: capsule radius {r:.3g} m")


if __name__ == "__main__":
    main()
