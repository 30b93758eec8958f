from tformer.evaluation.names import NAME_FRAMES, name_copy_rate


def test_name_copy_rate_counts_translations_that_keep_the_name():
    names = ["Piyush", "Kavya"]

    def perfect(sources):  # a stand-in model that copies the name through, possessive or not
        return [f"I know {n}'s dog." if n in s and i % 2 else f"{n}." for i, s in enumerate(sources) for n in names
                if n in s]

    result = name_copy_rate(perfect, names)
    assert result.total == 2 * len(NAME_FRAMES) and result.rate == 1.0 and not result.failures

    def mangles_piyush(sources):
        return [s.replace("Piyush", "Piyyiood") for s in sources]

    result = name_copy_rate(mangles_piyush, names)
    assert result.copied == len(NAME_FRAMES) and result.rate == 0.5
    assert all("Piyyiood" in out for _, out in result.failures)
