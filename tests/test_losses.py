"""Guided attention loss math on known alignments."""

import math

import torch

from asr.losses import attention_ce_loss, guided_attention_loss, guided_attention_weights, IGNORE_INDEX


def diagonal(U, T):
    a = torch.zeros(U, T)
    for n in range(U):
        a[n, int((n + 0.5) * T / U)] = 1.0
    return a


def test_weights_formula_and_padding():
    W = guided_attention_weights(torch.tensor([4]), torch.tensor([12]), U=5, T=14, sigma=0.3)
    assert W.shape == (1, 5, 14)
    n, t = 1, 9
    expected = 1 - math.exp(-(((n + 0.5) / 4 - (t + 0.5) / 12) ** 2) / (2 * 0.3**2))
    assert abs(W[0, n, t].item() - expected) < 1e-6
    assert W[0, 1, 4] == 0  # exactly on the diagonal (n + 1/2) / N == (t + 1/2) / T
    assert W[0, 4].abs().sum() == 0 and W[0, :, 12:].abs().sum() == 0  # padded rows / columns


def test_diagonal_attention_costs_less_than_anti_diagonal():
    U, T = 6, 30
    diag = diagonal(U, T)
    anti = diag.flip(0)
    lens_u, lens_t = torch.tensor([U]), torch.tensor([T])
    attn = lambda a: [a[None, None]]  # one layer, one head: (1, 1, U, T)
    low = guided_attention_loss(attn(diag), lens_u, lens_t, sigma=0.2)
    high = guided_attention_loss(attn(anti), lens_u, lens_t, sigma=0.2)
    assert low < 0.05 and high > 0.6
    uniform = torch.full((U, T), 1 / T)
    mid = guided_attention_loss(attn(uniform), lens_u, lens_t, sigma=0.2)
    assert low < mid < high


def test_speech_span_moves_the_diagonal_onto_the_speech():
    # 4 tokens spoken in encoder frames [10, 22) of 30: padding before and after.
    U, T = 4, 30
    speech = torch.tensor([[10, 22]])
    W = guided_attention_weights(torch.tensor([U]), torch.tensor([T]), U, T, sigma=0.3, speech=speech)
    assert W[0, 0, 11] == 0 and W[0, 3, 20] == 0  # (n + 1/2) / 4 == (t + 1/2 - 10) / 12
    assert W[0, 0, 0] > W[0, 0, 8] > W[0, 0, 11]  # the leading padding costs, more the farther
    assert W[0, 3, 29] > W[0, 3, 20]
    whole = guided_attention_weights(torch.tensor([U]), torch.tensor([T]), U, T, sigma=0.3)
    assert whole[0, 0, 11] > 0  # without the span the diagonal runs over all 30 frames
    on_speech = torch.zeros(U, T)
    for n in range(U):
        on_speech[n, 10 + int((n + 0.5) * 12 / U)] = 1.0
    lens = torch.tensor([U]), torch.tensor([T])
    assert guided_attention_loss([on_speech[None, None]], *lens, sigma=0.3, speech=speech) < 0.01
    assert guided_attention_loss([on_speech[None, None]], *lens, sigma=0.3) > 0.05


def test_every_layer_and_head_counts_equally():
    U, T = 4, 20
    good = diagonal(U, T)[None, None]  # (1, 1, U, T)
    bad = good.flip(2)
    layer0 = torch.cat([good, bad], dim=1)  # heads: good, bad
    layer1 = torch.cat([bad, bad], dim=1)
    lens = torch.tensor([U]), torch.tensor([T])
    each = [guided_attention_loss([head], *lens, sigma=0.3) for head in (good, bad)]
    assert each[0] < 0.05 < each[1]
    everything = guided_attention_loss([layer0, layer1], *lens, sigma=0.3)
    torch.testing.assert_close(everything, (each[0] + 3 * each[1]) / 4)


def test_padded_positions_do_not_count():
    U, T = 3, 12
    a = torch.zeros(2, 1, 5, 16)
    a[0, 0, :U, :T] = diagonal(U, T)
    a[1, 0, :U, :T] = diagonal(U, T)
    a[:, :, U:, :] = 1.0 / 16  # garbage on padded token rows
    loss = guided_attention_loss([a], torch.tensor([U, U]), torch.tensor([T, T]), sigma=0.3)
    single = guided_attention_loss([a[:1, :, :U, :T]], torch.tensor([U]), torch.tensor([T]), sigma=0.3)
    assert torch.allclose(loss, single)


def test_cross_entropy_ignores_padding_and_smooths():
    logits = torch.tensor([[[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    targets = torch.tensor([[0, IGNORE_INDEX]])
    sharp = attention_ce_loss(logits, targets, 0.0)
    assert torch.allclose(sharp, -logits[0, 0].log_softmax(-1)[0])
    assert attention_ce_loss(logits, targets, 0.1) > sharp


def test_batch_of_empty_transcripts_has_no_guide_and_a_finite_gradient():
    # Non-speech examples have no tokens: only the EOS row, which the guide leaves out.
    attn = torch.softmax(torch.randn(2, 4, 1, 9), -1).requires_grad_()  # (B, H, U=1, T')
    loss = guided_attention_loss([attn], torch.tensor([0, 0]), torch.tensor([9, 6]), 0.3)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(attn.grad).all()


def test_eos_row_is_guided_onto_the_end_of_the_speech_only_when_asked():
    # 3 tokens spoken in encoder frames [4, 16) of 24; rows 0-2 are the tokens, row 3 EOS.
    U, T = 5, 24
    speech = torch.tensor([[4, 16]])
    lens = torch.tensor([3]), torch.tensor([T])
    free = guided_attention_weights(*lens, U, T, sigma=0.3, speech=speech)
    guided = guided_attention_weights(*lens, U, T, sigma=0.3, speech=speech, eos=True)
    assert free[0, 3].abs().sum() == 0  # without eos the EOS row is free
    torch.testing.assert_close(guided[0, :3], free[0, :3])  # the token rows are unchanged
    assert guided[0, 4].abs().sum() == 0  # rows past EOS stay padding
    # EOS costs least at the end of the speech (t' = 1 between frames 15 and 16), more the farther back.
    assert guided[0, 3, 15] < 0.01 and guided[0, 3, 16] < 0.01
    assert guided[0, 3, 4] > guided[0, 3, 10] > guided[0, 3, 15]
    # An EOS that looks back at the first word now costs, and counts as one more row.
    attn = torch.zeros(1, 1, U, T)
    for n in range(3):
        attn[0, 0, n, 4 + 4 * n + 2] = 1.0  # on the diagonal
    attn[0, 0, 3, 5] = 1.0  # EOS looks at the first word
    on_path = guided_attention_loss([attn], *lens, sigma=0.3, speech=speech)
    with_eos = guided_attention_loss([attn], *lens, sigma=0.3, speech=speech, eos=True)
    assert on_path < 0.01
    torch.testing.assert_close(with_eos, (on_path * 3 + guided[0, 3, 5]) / 4)
    attn[0, 0, 3, 5], attn[0, 0, 3, 15] = 0.0, 1.0  # EOS at the end of the speech
    assert guided_attention_loss([attn], *lens, sigma=0.3, speech=speech, eos=True) < 0.01


def test_empty_transcripts_have_no_eos_row_either():
    attn = torch.softmax(torch.randn(2, 4, 1, 9), -1)
    assert guided_attention_loss([attn], torch.tensor([0, 0]), torch.tensor([9, 6]), 0.3, eos=True).item() == 0.0
