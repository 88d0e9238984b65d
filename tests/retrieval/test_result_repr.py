"""A printed list of results reads as one line per result (a notebook's or a REPL's echo)."""

from kgrec.retrieval import Explanation, Result


def test_a_result_prints_on_one_line_with_its_explanation_s_text():
    why = Explanation("kg_path", "you rated A highly -genre-> Drama <-genre- B")
    shown = repr(Result("i2", "B", 1.234567, why))
    assert shown == ("Result(item_id='i2', title='B', score=1.2346, explanation=Explanation(kind='kg_path', "
                     "text='you rated A highly -genre-> Drama <-genre- B', ...))")  # fmt: skip
    assert repr(Result("i2", "B", 1.0)) == "Result(item_id='i2', title='B', score=1.0000, explanation=None)"
