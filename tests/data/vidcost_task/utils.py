"""The local task's document functions (lmms-eval imports this file through the task YAML)."""

import os

VIDEOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "videos")


def doc_to_visual(doc):
    return [os.path.join(VIDEOS, doc["video"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    post = (lmms_eval_specific_kwargs or {}).get("post_prompt", "")
    return doc["question"] + "\n" + "\n".join(doc["options"]) + post


def process_results(doc, results):
    answer = results[0].strip()
    letter = answer[:1].upper() if answer else ""
    return {"accuracy": float(letter == doc["answer"])}
