# Sourced by scripts/check_gpu*.sh: prints the GPU and the versions that a GPU figure depends on.
#   describe_machine PYTHON
describe_machine() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$1" -c "import torch, lightning, torch_geometric, transformers as t
print('torch', torch.__version__, '| cuda', torch.version.cuda, '| lightning', lightning.__version__,
      '| pyg', torch_geometric.__version__, '| transformers', t.__version__, '| gpu', torch.cuda.is_available(),
      '| cpu threads', torch.get_num_threads())"
}
