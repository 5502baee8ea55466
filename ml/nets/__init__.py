"""Networks: generator, regressors, the landmark network and its features, parser, identity,
MTCNN, VGG and the parameter encoding."""
